/* Websocket masking (RFC 6455 5.3) in place: data[i] ^= key[i % 4].
 * The project's own implementation, so that the tunnel needs no private helper of aiohttp;
 * rancher_tunnel/wsmask.py falls back to pure Python when this is not built. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *mask(PyObject *self, PyObject *args) {
    Py_buffer key, data;
    if (!PyArg_ParseTuple(args, "y*w*", &key, &data)) {
        return NULL;
    }
    if (key.len != 4) {
        PyBuffer_Release(&key);
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "a websocket mask key is 4 bytes");
        return NULL;
    }
    const unsigned char *k = (const unsigned char *)key.buf;
    unsigned char *p = (unsigned char *)data.buf;
    Py_ssize_t n = data.len, i = 0;
    uint32_t k32;
    memcpy(&k32, k, 4);
    uint64_t k64 = ((uint64_t)k32 << 32) | k32;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= k64;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++) {
        p[i] ^= k[i & 3];
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"mask", mask, METH_VARARGS, "mask(key, data): XOR data in place with the 4-byte key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_wsmask", NULL, -1, methods};

PyMODINIT_FUNC PyInit__wsmask(void) { return PyModule_Create(&module); }
