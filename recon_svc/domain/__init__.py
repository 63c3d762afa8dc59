"""Pure reconciliation kernel: typed reports and the rules that compare them."""
