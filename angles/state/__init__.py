"""What angles keeps between runs: the state store (history, check states, alert marks,
locks), the alerting policy that reads it, and the scheduler loop."""
