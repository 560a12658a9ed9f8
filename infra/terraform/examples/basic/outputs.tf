output "edge_url" {
  description = "Players POST their events here."
  value       = module.livecount.edge_url
}

output "badge_url" {
  description = "GET <badge_url>/api/streams/{id}/viewers: the public badge."
  value       = module.livecount.badge_url
}

output "token_secret_arn" {
  description = "The secret your backend signs session tokens with."
  value       = module.livecount.token_secret_arn
}

output "events_queue_url" {
  description = "Relays send batches of events here."
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
