"""The built-in model families; each module registers its family with ``rexforge.registry``
when imported (the registry imports them on its first query)."""
