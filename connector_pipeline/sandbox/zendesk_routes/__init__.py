"""One module per router of the sandbox Zendesk."""
