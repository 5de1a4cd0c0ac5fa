"""Hugging Face: inference (Hub models, Inference Endpoints, TGI and TEI servers) and datasets on the Hub."""
