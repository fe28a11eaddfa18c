"""Fabric segmentation: reachability between tenants and planes."""
