"""What talks to the outside: the model, the video encoder, the upload, the progress channel."""
