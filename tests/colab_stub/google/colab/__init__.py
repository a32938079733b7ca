"""A stand-in for Colab's ``google.colab`` package, for the Colab-like tests only.

The notebooks' set-up cell takes "``import google.colab`` works" to mean "this is Colab"; with
``tests/colab_stub`` on PYTHONPATH a local kernel takes the Colab path: clone, import from the
clone. ``google`` itself has no ``__init__.py``: it stays a namespace package, so
``google.protobuf`` and friends still import.
"""
