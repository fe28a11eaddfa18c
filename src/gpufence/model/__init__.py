"""The frozen data types the pipeline passes along: inventory, evidence, findings, snapshot."""
