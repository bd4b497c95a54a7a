"""ada_governance: AI deployed in a governed, measured workflow."""
