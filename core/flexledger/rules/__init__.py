"""The market rules in Python: a mirror of what the contracts enforce, for the optimiser, the
backend and the auditor. DESIGN.md is the one statement of each rule; tests hold this mirror
against the contracts on the same cases."""
