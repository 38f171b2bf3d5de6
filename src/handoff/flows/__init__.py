"""Controllers: compare what should be with what each system holds, plan, apply."""
