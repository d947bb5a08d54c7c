"""One render job from input to answer, in terms of ports."""
