"""The agents' desk: sign-in (desk.auth), pages and live events in the browser, all under /desk."""
