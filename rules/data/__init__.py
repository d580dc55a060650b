"""Data the structural signals read (signals.json: brands, shorteners, rare TLDs, with provenance)."""
