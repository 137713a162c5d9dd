"""Building models: the Trainer and its step loop (`trainer`), the plans a recipe gives it (`plan`,
with `draws` and `schedule`), the few-takes recipe for custom words (`custom_words`), what a run
writes (`outputs`, `checkpoints`, and the report folder with its plots, `report`), evaluation on a
data folder (`evaluate`) and the rejection study (`rejection`). Never imports the GUI."""
