"""The sync engine: pull, capture, three-way merge, conflict policies, push, watermarks and run bookkeeping."""
