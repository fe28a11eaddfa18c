"""Confidential computing & attestation controls (CC-*)."""
