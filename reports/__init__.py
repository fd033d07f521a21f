"""Reports: daily counters per support number, kept by the webhooks and jobs that see each event, and the figures,
charts and CSV the desk's reports page draws from them."""
