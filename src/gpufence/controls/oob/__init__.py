"""Out-of-band (BMC) controls (OOB-*)."""
