"""Pure logic of Caravan jobs: spec reading, allocation summaries, the API view, counts."""
