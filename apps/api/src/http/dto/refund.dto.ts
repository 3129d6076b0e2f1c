import { JSONSchema } from 'class-validator-jsonschema';
import { Allow, IsOptional, IsString, Length, Matches, MaxLength } from 'class-validator';

const REFUND_ID_MESSAGE = 'refundId must be 6 to 32 characters of letters, digits and _';

/** POST /api/v1/orders/:orderId/refunds (API.md §4). */
export class CreateRefundDto {
  /** Number or decimal string, parsed strictly (INVALID_AMOUNT); absent: what is left to refund. */
  @JSONSchema({
    oneOf: [{ type: 'number' }, { type: 'string', pattern: '^\\d+(\\.\\d+)?$' }],
    description: 'Major units (yuan for CNY), a JSON number or a decimal string (API.md §3); absent: what is left',
    example: '99.99',
  })
  @IsOptional()
  @Allow()
  amount?: unknown;
  @IsOptional() @IsString() @MaxLength(256) reason?: string;
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9_]{6,32}$/, { message: REFUND_ID_MESSAGE }) refundId?: string;
}

/** The facade's `refund` (API.md §5): the seeds' argument names. */
export class FacadeRefundDto extends CreateRefundDto {
  @IsString() @Length(1, 64) orderId: string;
}
