"""What every layer shares: errors, the source/destination contract, the options of one side."""
