"""`pcc`: Plant Change Control from a pipeline, through the portal's API only (no Django here)."""
