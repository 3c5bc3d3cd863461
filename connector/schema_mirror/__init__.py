"""The schema mirror: the org's metadata (describe) reproduced as SQL tables, with
currencies, territories and schema drift followed as the org changes."""
