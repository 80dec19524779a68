"""The Google Cloud sync: Partner Advantage opportunities into the platform. Google's co-sell API is
not generally available, so opportunities come from Partner Advantage's CSV export
(`python -m integrations.gcp import FILE.csv`, docs/integrations.md); `client.GcpClient` is the seam
an API client will fill."""
