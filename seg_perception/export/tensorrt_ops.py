"""TensorRT's ONNX operator support, as data (no code): what ``tensorrt_check`` checks against.

Transcribed from onnx-tensorrt's operator support matrix, ``docs/operators.md``:

* TensorRT 8.5: onnx-tensorrt release/8.5-GA docs/operators.md ("TensorRT 8.5 supports
  operators up to Opset 17"; data types DOUBLE, FLOAT32, FLOAT16, INT8, BOOL, with INT64 cast
  down to INT32 and DOUBLE to FLOAT by the parser).
* TensorRT 10.x: onnx-tensorrt main-branch (10.x) docs/operators.md; the opset range is the
  one of release/10.0-GA ("opset 9 to opset 20", the most conservative 10.x). UINT8 only as a
  network input or output.
"""

#: TensorRT versions the checker knows; also the column order of ``SUPPORT_TABLE``.
TRT_VERSION_CHOICES = ('8.5', '10')

#: Inclusive ONNX default-domain opset range each parser accepts.
OPSET_RANGE = {'8.5': (7, 17), '10': (9, 20)}

#: TensorRT's TopK layer takes K up to this value (exclusive).
TOPK_MAX_K = 3840

# Operator support matrix. Columns: operator, data types of the main input on TensorRT 8.5,
# on TensorRT 10.x. '-' = not supported (N in the matrix). An operator missing from this
# table is not in the matrix at all (the parser has no importer for it).
# Type codes: F32 F16 BF16 I8 I32 I64 U8 BOOL; '*' = types not checked (shape/constant ops).
SUPPORT_TABLE = """
Abs                        F32,F16,I32                 F32,F16,BF16,I32,I64
Acos                       F32,F16                     F32,F16,BF16
Acosh                      F32,F16                     F32,F16,BF16
Add                        F32,F16,I32                 F32,F16,BF16,I32,I64
And                        BOOL                        BOOL
ArgMax                     F32,F16                     F32,F16,BF16,I32,I64
ArgMin                     F32,F16                     F32,F16,BF16,I32,I64
Asin                       F32,F16                     F32,F16,BF16
Asinh                      F32,F16                     F32,F16,BF16
Atan                       F32,F16                     F32,F16,BF16
Atanh                      F32,F16                     F32,F16,BF16
AveragePool                F32,F16,I8,I32              F32,F16,BF16
BatchNormalization         F32,F16                     F32,F16,BF16
Bernoulli                  -                           -
BitShift                   -                           -
BlackmanWindow             -                           F32,F16
Cast                       F32,F16,I32,I8,BOOL         F32,F16,BF16,I32,I64,U8,BOOL
CastLike                   -                           F32,F16,BF16,I32,I64,U8,BOOL
Ceil                       F32,F16                     F32,F16,BF16
Celu                       F32,F16                     F32,F16,BF16
Clip                       F32,F16,I8                  F32,F16,BF16
Compress                   -                           -
Concat                     F32,F16,I32,I8,BOOL         F32,F16,BF16,I32,I64,BOOL
ConcatFromSequence         -                           -
Constant                   *                           *
ConstantOfShape            *                           *
Conv                       F32,F16,I8                  F32,F16,BF16
ConvInteger                -                           -
ConvTranspose              F32,F16,I8                  F32,F16,BF16
Cos                        F32,F16                     F32,F16,BF16
Cosh                       F32,F16                     F32,F16,BF16
CumSum                     F32,F16                     F32,F16,BF16
DFT                        -                           -
DepthToSpace               F32,F16,I32                 F32,F16,BF16,I32,I64
DequantizeLinear           I8                          I8
Det                        -                           -
Div                        F32,F16,I32                 F32,F16,BF16,I32,I64
Dropout                    F32,F16                     F32,F16,BF16
DynamicQuantizeLinear      -                           -
Einsum                     F32,F16                     F32,F16,BF16
Elu                        F32,F16,I8                  F32,F16,BF16
Equal                      F32,F16,I32                 F32,F16,BF16,I32,I64
Erf                        F32,F16                     F32,F16,BF16
Exp                        F32,F16                     F32,F16,BF16
Expand                     F32,F16,I32,BOOL            F32,F16,BF16,I32,I64,BOOL
EyeLike                    F32,F16,I32,BOOL            F32,F16,BF16,I32,I64,BOOL
Flatten                    F32,F16,I32,BOOL            F32,F16,BF16,I32,I64,BOOL
Floor                      F32,F16                     F32,F16,BF16
Gather                     F32,F16,I8,I32,BOOL         F32,F16,BF16,I32,I64,BOOL
GatherElements             F32,F16,I8,I32,BOOL         F32,F16,BF16,I32,I64,BOOL
GatherND                   F32,F16,I8,I32,BOOL         F32,F16,BF16,I32,I64,BOOL
Gelu                       -                           F32,F16,BF16,I8,I32,I64
Gemm                       F32,F16,I8                  F32,F16,BF16
GlobalAveragePool          F32,F16,I8                  F32,F16,BF16
GlobalLpPool               F32,F16,I8                  F32,F16,BF16
GlobalMaxPool              F32,F16,I8                  F32,F16,BF16
Greater                    F32,F16,I32                 F32,F16,BF16,I32,I64
GreaterOrEqual             F32,F16,I32                 F32,F16,BF16,I32,I64
GridSample                 F32,F16                     F32,F16
GroupNormalization         -                           F32,F16,BF16
GRU                        F32,F16                     F32,F16,BF16
HammingWindow              -                           F32,F16
HannWindow                 -                           F32,F16
HardSigmoid                F32,F16,I8                  F32,F16,BF16
HardSwish                  F32,F16,I8                  F32,F16,BF16
Hardmax                    -                           F32,F16,BF16
Identity                   F32,F16,I32,I8,BOOL         F32,F16,BF16,I32,I64,BOOL
If                         F32,F16,I32,BOOL            F32,F16,BF16,I32,I64,BOOL
ImageScaler                F32,F16                     F32,F16,BF16
InstanceNormalization      F32,F16                     F32,F16,BF16
IsInf                      -                           F32,F16,BF16
IsNaN                      F32,F16,I32                 F32,F16,BF16,I32,I64
LayerNormalization         -                           F32,F16,BF16
LeakyRelu                  F32,F16,I8                  F32,F16,BF16
Less                       F32,F16,I32                 F32,F16,BF16,I32,I64
LessOrEqual                F32,F16,I32                 F32,F16,BF16,I32,I64
Log                        F32,F16                     F32,F16,BF16
LogSoftmax                 F32,F16                     F32,F16,BF16
Loop                       F32,F16,I32,BOOL            F32,F16,BF16,I32,I64,BOOL
LRN                        F32,F16                     F32,F16,BF16
LSTM                       F32,F16                     F32,F16,BF16
LpNormalization            F32,F16                     F32,F16,BF16
LpPool                     F32,F16,I8                  F32,F16,BF16
MatMul                     F32,F16                     F32,F16,BF16
MatMulInteger              -                           -
Max                        F32,F16,I32                 F32,F16,BF16,I32,I64
MaxPool                    F32,F16,I8                  F32,F16,BF16
MaxRoiPool                 -                           -
MaxUnpool                  -                           -
Mean                       F32,F16,I32                 F32,F16,BF16,I32,I64
MeanVarianceNormalization  F32,F16                     F32,F16,BF16
MelWeightMatrix            -                           -
Min                        F32,F16,I32                 F32,F16,BF16,I32,I64
Mish                       -                           F32,F16
Mod                        F32,F16,I32                 F32,F16,BF16,I32,I64
Mul                        F32,F16,I32                 F32,F16,BF16,I32,I64
Multinomial                -                           -
Neg                        F32,F16,I32                 F32,F16,BF16,I32,I64
NegativeLogLikelihoodLoss  -                           -
NonMaxSuppression          F32,F16                     F32,F16
NonZero                    F32,F16                     F32,F16
Not                        BOOL                        BOOL
OneHot                     F32,F16,I32,BOOL            F32,F16,BF16,I32,I64,BOOL
Optional                   -                           -
OptionalGetElement         -                           -
OptionalHasElement         -                           -
Or                         BOOL                        BOOL
Pad                        F32,F16,I8,I32              F32,F16,BF16,I32,I64
ParametricSoftplus         F32,F16,I8                  F32,F16,BF16
Pow                        F32,F16                     F32,F16,BF16,I32,I64
PRelu                      F32,F16,I8                  F32,F16,BF16
QLinearConv                -                           -
QLinearMatMul              -                           -
QuantizeLinear             F32,F16                     F32,F16,BF16
RandomNormal               *                           *
RandomNormalLike           F32,F16                     F32,F16,BF16
RandomUniform              *                           *
RandomUniformLike          F32,F16                     F32,F16,BF16
Range                      *                           *
Reciprocal                 F32,F16                     F32,F16,BF16
ReduceL1                   F32,F16                     F32,F16,BF16,I32,I64
ReduceL2                   F32,F16                     F32,F16,BF16,I32,I64
ReduceLogSum               F32,F16                     F32,F16,BF16,I32,I64
ReduceLogSumExp            F32,F16                     F32,F16,BF16,I32,I64
ReduceMax                  F32,F16                     F32,F16,BF16,I32,I64
ReduceMean                 F32,F16                     F32,F16,BF16,I32,I64
ReduceMin                  F32,F16                     F32,F16,BF16,I32,I64
ReduceProd                 F32,F16                     F32,F16,BF16,I32,I64
ReduceSum                  F32,F16                     F32,F16,BF16,I32,I64
ReduceSumSquare            F32,F16                     F32,F16,BF16,I32,I64
Relu                       F32,F16,I8                  F32,F16,BF16,I32,I64
Reshape                    F32,F16,I32,I8,BOOL         F32,F16,BF16,I32,I64,BOOL
Resize                     F32,F16                     F32,F16,BF16
ReverseSequence            F32,F16                     F32,F16,BF16,I32,I64,BOOL
RNN                        F32,F16                     F32,F16,BF16
RoiAlign                   F32,F16                     F32,F16
Round                      F32,F16,I8                  F32,F16,BF16
STFT                       -                           F32
ScaledTanh                 F32,F16,I8                  F32,F16,BF16
Scan                       F32,F16                     F32,F16,BF16
Scatter                    F32,F16,I8,I32              F32,F16,BF16,I32,I64
ScatterElements            F32,F16,I8,I32              F32,F16,BF16,I32,I64
ScatterND                  F32,F16,I8,I32              F32,F16,BF16,I32,I64
Selu                       F32,F16,I8                  F32,F16,BF16
SequenceAt                 -                           -
SequenceConstruct          -                           -
SequenceEmpty              -                           -
SequenceErase              -                           -
SequenceInsert             -                           -
SequenceLength             -                           -
SequenceMap                -                           -
Shape                      *                           *
Shrink                     F32,F16,I32                 F32,F16,BF16,I32,I64
Sigmoid                    F32,F16,I8                  F32,F16,BF16
Sign                       F32,F16,I8,I32              F32,F16,BF16,I32,I64
Sin                        F32,F16                     F32,F16,BF16
Sinh                       F32,F16                     F32,F16,BF16
Size                       *                           *
Slice                      F32,F16,I32,I8,BOOL         F32,F16,BF16,I32,I64,BOOL
Softmax                    F32,F16                     F32,F16,BF16
SoftmaxCrossEntropyLoss    -                           -
Softplus                   F32,F16,I8                  F32,F16,BF16
Softsign                   F32,F16,I8                  F32,F16,BF16
SpaceToDepth               F32,F16,I32                 F32,F16,BF16,I32,I64
Split                      F32,F16,I32,BOOL            F32,F16,BF16,I32,I64,BOOL
SplitToSequence            -                           -
Sqrt                       F32,F16                     F32,F16,BF16
Squeeze                    F32,F16,I32,I8,BOOL         F32,F16,BF16,I32,I64,BOOL
StringNormalizer           -                           -
Sub                        F32,F16,I32                 F32,F16,BF16,I32,I64
Sum                        F32,F16,I32                 F32,F16,BF16,I32,I64
Tan                        F32,F16                     F32,F16,BF16
Tanh                       F32,F16,I8                  F32,F16,BF16
TfIdfVectorizer            -                           -
ThresholdedRelu            F32,F16,I8                  F32,F16,BF16
Tile                       F32,F16,I32,BOOL            F32,F16,BF16,I32,I64,BOOL
TopK                       F32,F16                     F32,F16,BF16,I32,I64
Transpose                  F32,F16,I32,I8,BOOL         F32,F16,BF16,I32,I64,BOOL
Trilu                      F32,F16,I32,I8,BOOL         F32,F16,BF16,I32,I64,BOOL
Unique                     -                           -
Unsqueeze                  F32,F16,I32,I8,BOOL         F32,F16,BF16,I32,I64,BOOL
Upsample                   F32,F16                     F32,F16,BF16
Where                      F32,F16,I32,BOOL            F32,F16,BF16,I32,I64,BOOL
Xor                        BOOL                        BOOL
"""

# Inputs that the parser needs as build-time constants (initializers or Constant nodes):
# (operator, input index, what the matrix calls it).
CONSTANT_INPUTS = (
    ('TopK', 1, 'K'),
    ('Slice', 3, 'axes'),
    ('Squeeze', 1, 'axes'),
    ('Unsqueeze', 1, 'axes'),
    ('CumSum', 1, 'axis'),
    ('OneHot', 1, 'depth'),
)

# Resize / Upsample restrictions of the matrix: modes, coordinate and nearest modes.
RESIZE_MODES = ('nearest', 'linear')
RESIZE_COORDINATE_MODES = ('half_pixel', 'pytorch_half_pixel', 'tf_half_pixel_for_nn',
                           'asymmetric', 'align_corners')
RESIZE_NEAREST_MODES = ('floor', 'ceil', 'round_prefer_floor', 'round_prefer_ceil')
