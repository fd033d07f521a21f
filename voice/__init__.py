"""Voice: Twilio webhooks, TwiML builders and the Twilio REST client."""
