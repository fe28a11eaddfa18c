"""The loading stage: inventory, evidence and referenced files (what users and collectors
wrote) -> the frozen Snapshot."""
