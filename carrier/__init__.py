"""A local Twilio-compatible voice carrier: the REST API, calls that run TwiML, scripted phones."""
