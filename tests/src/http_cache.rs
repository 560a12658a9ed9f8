//! A real HTTP cache standing in for the CDN in front of the read function: Debian's nginx
//! (`make nginx` installs it), configured as CloudFront is for the badge: it keeps an answer as
//! long as its `Cache-Control` says, collapses concurrent requests for one object into one request
//! to the origin (as CloudFront does: `proxy_cache_lock` for a new object, and for an expired one
//! the stale copy for the others while one request updates it), keys on the path alone, and adds
//! the header that marks a request public.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// An nginx of the test's own, stopped (and its folder removed) on drop.
pub struct HttpCache {
    /// `http://127.0.0.1:{port}`.
    pub url: String,
    child: Child,
    dir: PathBuf,
}

/// Where nginx is: on `PATH`, or in `/usr/sbin` where Debian puts it.
fn nginx() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|path| path.is_file());
    on_path.unwrap_or_else(|| panic!("nginx is not installed: run `make nginx` (or `make test`)"))
}

impl HttpCache {
    /// Starts nginx on a free port in front of `origin` (`http://127.0.0.1:{port}`), with the
    /// header `public_header: 1` added to what it forwards.
    pub async fn start(origin: &str, public_header: &str) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(crate::unique_name("nginx"));
        for sub in ["cache", "temp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("nginx folders");
        }
        // nginx's workers may run as another user: let them write the cache.
        set_open(&dir);
        let config = format!(
            r#"worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {dir}/temp/body;
  proxy_temp_path {dir}/temp/proxy;
  fastcgi_temp_path {dir}/temp/fastcgi;
  uwsgi_temp_path {dir}/temp/uwsgi;
  scgi_temp_path {dir}/temp/scgi;
  proxy_cache_path {dir}/cache keys_zone=badge:1m levels=1:2 inactive=60s;
  upstream origin {{ server {origin_host}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header {public_header} 1;
      proxy_cache badge;
      proxy_cache_key $uri;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 5s;
      proxy_cache_use_stale updating;
      proxy_cache_revalidate on;
      add_header x-cache $upstream_cache_status;
    }}
  }}
}}
"#,
            dir = dir.display(),
            origin_host = origin.trim_start_matches("http://"),
        );
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config).expect("nginx.conf");
        let child = Command::new(nginx())
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let cache = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        let listening = crate::wait_for_port(port, Duration::from_secs(10)).await;
        assert!(
            listening,
            "nginx did not listen within 10 s: {}",
            std::fs::read_to_string(cache.dir.join("error.log")).unwrap_or_default()
        );
        cache
    }
}

impl Drop for HttpCache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn set_open(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for path in [dir.to_path_buf(), dir.join("cache"), dir.join("temp")] {
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777));
    }
}
