"""Training of the tokenizer and the prior (``python train.py``)."""
