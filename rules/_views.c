/* The views of a message text that the rule engine scans, UTF-8 encoded, in one pass.
 *
 * The engine scans the normalised, squeezed and homophone views as bytes. In Python they take a dozen
 * calls per message (replacements, the NFKC check, casefold, the conversion gate, two table conversions,
 * three encodes: rules.normalise, rules.homophones); here a loop or two over the characters does it.
 * The tables are built in Python (rules/squeeze_fold.py) from those very functions and passed in, one
 * uint16 per code point of the Basic Multilingual Plane:
 * - the normalising table: what the character becomes in the normalised view, or 0 when it does not
 *   become one character on its own (a decomposition, a combining mark, a character that composes with
 *   its neighbour, one the traditional-to-simplified conversion would touch, ...): such a text is left to
 *   the Python path, which knows them;
 * - the squeezing table: 0 when the squeezed view drops the character (a separator), else the character
 *   that stands for it in the homophone view (itself when it is not folded).
 * A text with a character beyond the plane is always left to the Python path (None).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static Py_ssize_t put_utf8(char *out, Py_UCS4 c)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
}

static int get_table(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0)
        return -1;
    if (view->len != 0x10000 * (Py_ssize_t)sizeof(uint16_t)) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "a table holds 65536 uint16 values");
        return -1;
    }
    return 0;
}

/* Shrinks a bytes object made with room to spare to its length; steals the reference, NULL on error. */
static PyObject *trimmed(PyObject *bytes, Py_ssize_t length)
{
    if (_PyBytes_Resize(&bytes, length) < 0)
        return NULL;
    return bytes;
}

/* (squeezed view, homophone view), UTF-8, of the n characters of a BMP text; NULL on error. */
static PyObject *squeezed_pair(int kind, const void *data, Py_ssize_t n, const uint16_t *table)
{
    PyObject *squeezed = PyBytes_FromStringAndSize(NULL, 3 * n);
    PyObject *folded = PyBytes_FromStringAndSize(NULL, 3 * n);
    if (squeezed == NULL || folded == NULL) {
        Py_XDECREF(squeezed);
        Py_XDECREF(folded);
        return NULL;
    }
    char *s = PyBytes_AS_STRING(squeezed);
    char *f = PyBytes_AS_STRING(folded);
    Py_ssize_t ns = 0, nf = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        Py_UCS4 to = table[c];
        if (to == 0)
            continue;
        ns += put_utf8(s + ns, c);
        nf += put_utf8(f + nf, to);
    }
    squeezed = trimmed(squeezed, ns);
    folded = trimmed(folded, nf);
    if (squeezed == NULL || folded == NULL) {
        Py_XDECREF(squeezed);
        Py_XDECREF(folded);
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, squeezed, folded);
    Py_DECREF(squeezed);
    Py_DECREF(folded);
    return pair;
}

/* squeeze_fold(normalised, squeezing_table) -> (squeezed UTF-8, homophone UTF-8) | None */
static PyObject *squeeze_fold(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "squeeze_fold(text: str, table)");
        return NULL;
    }
    PyObject *text = args[0];
    if (PyUnicode_READY(text) < 0)
        return NULL;
    int kind = PyUnicode_KIND(text);
    if (kind == PyUnicode_4BYTE_KIND)
        Py_RETURN_NONE;
    Py_buffer table;
    if (get_table(args[1], &table) < 0)
        return NULL;
    PyObject *pair =
        squeezed_pair(kind, PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text), (const uint16_t *)table.buf);
    PyBuffer_Release(&table);
    return pair;
}

/* The normalised text of a BMP text through the normalising table, or None when a character is not in
 * it; NULL on error. */
static PyObject *normalised_text(int kind, const void *data, Py_ssize_t n, const uint16_t *table)
{
    Py_UCS4 widest = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 to = table[PyUnicode_READ(kind, data, i)];
        if (to == 0)
            Py_RETURN_NONE;
        if (to > widest)
            widest = to;
    }
    PyObject *out = PyUnicode_New(n, widest);
    if (out == NULL)
        return NULL;
    int out_kind = PyUnicode_KIND(out);
    void *out_data = PyUnicode_DATA(out);
    for (Py_ssize_t i = 0; i < n; i++)
        PyUnicode_WRITE(out_kind, out_data, i, table[PyUnicode_READ(kind, data, i)]);
    return out;
}

/* normalised_views(text, normalising_table, squeezing_table)
 *     -> (normalised str, normalised UTF-8, squeezed UTF-8, homophone UTF-8) | None */
static PyObject *normalised_views(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "normalised_views(text: str, normalising_table, squeezing_table)");
        return NULL;
    }
    PyObject *text = args[0];
    if (PyUnicode_READY(text) < 0)
        return NULL;
    if (PyUnicode_KIND(text) == PyUnicode_4BYTE_KIND)
        Py_RETURN_NONE;
    Py_buffer normalising, squeezing;
    if (get_table(args[1], &normalising) < 0)
        return NULL;
    if (get_table(args[2], &squeezing) < 0) {
        PyBuffer_Release(&normalising);
        return NULL;
    }
    PyObject *result = NULL, *utf8 = NULL, *pair = NULL;
    PyObject *norm = normalised_text(PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text),
                                     (const uint16_t *)normalising.buf);
    if (norm == NULL || norm == Py_None) {
        result = norm;
        goto done;
    }
    utf8 = PyUnicode_AsUTF8String(norm);
    if (utf8 == NULL)
        goto done;
    pair = squeezed_pair(PyUnicode_KIND(norm), PyUnicode_DATA(norm), PyUnicode_GET_LENGTH(norm),
                         (const uint16_t *)squeezing.buf);
    if (pair == NULL)
        goto done;
    result = PyTuple_Pack(4, norm, utf8, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
done:
    if (result != norm)
        Py_XDECREF(norm);
    Py_XDECREF(utf8);
    Py_XDECREF(pair);
    PyBuffer_Release(&normalising);
    PyBuffer_Release(&squeezing);
    return result;
}

static PyMethodDef methods[] = {
    {"squeeze_fold", (PyCFunction)(void (*)(void))squeeze_fold, METH_FASTCALL,
     "squeeze_fold(text, table) -> (squeezed UTF-8, homophone UTF-8), or None for a text beyond the BMP"},
    {"normalised_views", (PyCFunction)(void (*)(void))normalised_views, METH_FASTCALL,
     "normalised_views(text, normalising_table, squeezing_table) -> (normalised, its UTF-8, squeezed UTF-8, "
     "homophone UTF-8), or None for a text only the Python path can normalise"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "rules._views", NULL, 0, methods};

PyMODINIT_FUNC PyInit__views(void)
{
    return PyModule_Create(&module);
}
