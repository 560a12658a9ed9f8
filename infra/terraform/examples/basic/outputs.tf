output "events_queue_url" {
  description = "Players send their events here."
  value       = module.livecount.events_queue_url
}

output "read_url" {
  description = "GET /api/streams/{id} for one stream's count."
  value       = module.livecount.read_url
}

output "counters_table_name" {
  description = "Dashboards read one item per stream from this table."
  value       = module.livecount.counters_table_name
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = module.livecount.dashboard_name
}
