"""Demo parts that run without Django: the catalogue data and the fake marketplace."""
