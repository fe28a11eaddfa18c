"""Offline verification of CPU TEE evidence (AMD SEV-SNP, Intel TDX) and its binding."""
