"""Data & secrets controls (DAT-*)."""
