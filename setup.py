"""Only the optional C extension lives here (everything else is in pyproject.toml): the tunnel's
websocket masking. Without a compiler the build goes on and the tunnel masks in pure Python."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("rancher_tunnel._wsmask", ["rancher_tunnel/_wsmask.c"],
                             optional=True)])
