"""Strategy families, the compiled backtest engine, search and ranking."""
