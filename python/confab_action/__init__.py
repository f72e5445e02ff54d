"""The GitHub Action's helpers (action.yml): summary.py writes the job summary of a scan."""
