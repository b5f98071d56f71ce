"""Files: uploads for batches, and the output and error files of finished batches."""
