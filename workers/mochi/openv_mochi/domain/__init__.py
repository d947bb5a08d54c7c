"""Pure decisions of a render job: what the input means, which error, how much progress."""
