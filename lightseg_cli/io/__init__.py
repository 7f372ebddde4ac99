"""Small file utilities with one home each: atomic writes (``atomic``), the user cache folder
(``cache``) and the image-file reader (``images``)."""
