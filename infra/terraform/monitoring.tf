# Alarms and the dashboard, as computed (and tested) in modules/settings.

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = module.settings.alarms

  alarm_name          = "${local.s.name_prefix}-${replace(each.key, "_", "-")}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.expression == null ? each.value.period : null
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.datapoints_to_alarm
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison_operator
  treat_missing_data  = each.value.treat_missing_data
  alarm_actions       = var.alarm_actions
  tags                = var.tags

  # A metric-math alarm: the expression over its queries.
  dynamic "metric_query" {
    for_each = each.value.expression == null ? [] : [each.value.expression]
    content {
      id          = "e"
      expression  = metric_query.value
      return_data = true
    }
  }
  dynamic "metric_query" {
    for_each = each.value.queries
    content {
      id = metric_query.value.id
      metric {
        namespace   = metric_query.value.namespace
        metric_name = metric_query.value.metric_name
        dimensions  = metric_query.value.dimensions
        stat        = metric_query.value.statistic
        period      = each.value.period
      }
    }
  }
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = coalesce(var.dashboard_name, local.s.name_prefix)
  dashboard_body = module.settings.dashboard_body
}
