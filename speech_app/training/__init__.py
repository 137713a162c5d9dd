"""Building models: the training loop (`trainer`), the few-takes recipe for custom words
(`custom_words`), evaluation on a data folder (`evaluate`), the rejection study (`rejection`) and
the report folder with its plots (`report`). Never imports the GUI."""
