"""Process configuration every layer shares: settings, logging and the encryption keyring."""
