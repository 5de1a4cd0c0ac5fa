"""What a user hands judgeflow: the config file, items to judge, documents, training examples, the bundled corpus."""
