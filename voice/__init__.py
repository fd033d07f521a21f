"""Voice: what Twilio hears (webhooks and TwiML, syncing a number with Twilio), and the admin API and CLI."""
