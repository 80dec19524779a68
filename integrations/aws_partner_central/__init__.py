"""The AWS Partner Central (ACE) sync worker: co-sell opportunities from the `partnercentral-selling`
API into the platform (docs/integrations.md)."""
