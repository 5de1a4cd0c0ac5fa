"""OpenAI and OpenAI-compatible servers: chat and embeddings, the lean chat client, fine-tuning."""
