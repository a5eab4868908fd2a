"""LoRA catalogs: the files in the image backends' LoRA folders and each key's personal LoRAs."""
