"""The only code that imports vendor SDKs or loads local models: OpenAI, Hugging Face, Wikipedia, local, neural."""
