"""Every call to Salesforce goes through this package: auth flows, the typed
client over simple-salesforce, batching, retries and quota tracking."""
