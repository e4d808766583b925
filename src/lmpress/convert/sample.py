"""The default calibration text: a few kilobytes in the genres lmpress meets (prose,
source code, markup, numbers, logs, other scripts). Calibration only measures how large
activations get, with a wide margin, so a small varied sample serves; pass your own
with --calibrate for text unlike this."""

SAMPLE = '''\
The history of data compression is a history of prediction. In 1948 Claude Shannon
showed that the best code for a message spends, on each symbol, the logarithm of one
over its probability; eight years later David Huffman found codes that come close, and
in the 1970s arithmetic coding closed the gap. What remained was the model: who can say
how likely the next letter is? Early compressors counted recent contexts. Today large
language models, trained on trillions of words, predict text better than any of them.

"Would you like some tea?" she asked, pouring before he could answer. Outside, the rain
had not stopped since Tuesday; the river was high and brown, and the ferry was late.

def merge_sorted(a: list[int], b: list[int]) -> list[int]:
    """Merge two sorted lists into one sorted list."""
    i = j = 0
    out = []
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i]); i += 1
        else:
            out.append(b[j]); j += 1
    return out + a[i:] + b[j:]

#include <stdio.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) printf("%d: %s\\n", i, argv[i]);
    return 0;
}

| year | population | growth |
|------|-----------:|-------:|
| 2019 | 8,419,600  | -0.4 % |
| 2020 | 8,804,190  | +4.6 % |

2024-03-17 12:04:55,912 INFO  server: listening on 0.0.0.0:8080 (pid 41872)
2024-03-17 12:05:02,004 WARN  pool: connection 7 idle for 30.0s, closing
{"id": 1842, "name": "widget", "tags": ["blue", "small"], "price": 12.5, "stock": null}
<p class="note">See <a href="https://example.org/docs?page=2&amp;lang=en">the docs</a>.</p>

Die Kompression von Daten ist eng mit der Vorhersage verwandt. La compression des
données est une forme de prédiction. La compresión de datos es una forma de predicción.
Сжатие данных тесно связано с предсказанием. 数据压缩与预测密切相关。データ圧縮は予測と
深く関係している。압축은 예측이다. ضغط البيانات مرتبط بالتنبؤ.

E = mc^2, a^2 + b^2 = c^2, and the integral of exp(-x^2) over the real line is sqrt(pi).
3.14159265358979323846 2.71828182845904523536 1.41421356237309504880 0x7fffffff 1e-9
'''
